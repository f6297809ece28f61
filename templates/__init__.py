"""The shipped mail templates (Jinja2), read with importlib.resources so they work from a wheel or a zip.

Layout: `<locale>/<name>.<part>.j2` where part is `subject`, `txt` or `html` and name is one of
`activation_link`, `activation_password`, `password_reset_link`, `password_reset_password`, `login_changed`,
`account_removed`. Files starting with `_` are shared pieces (layout, signature). A consultant overrides any
file by putting one with the same relative path into `[mail] templates_dir`.
"""
