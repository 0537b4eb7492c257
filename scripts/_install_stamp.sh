# Sourced by scripts/bootstrap and scripts/test-lowest: whether a virtualenv already holds a
# current install of this package, so a re-run needs no package index.
# The fingerprint covers pyproject.toml and the names of the package's files: an editable
# install in strict mode links each file, so a new module needs a reinstall too.

install_fingerprint() {
  { cat pyproject.toml; find serde client service -type f ! -path '*/__pycache__/*' | LC_ALL=C sort; } \
    | sha256sum | cut -d' ' -f1
}

# install_current VENV: the venv exists and was installed from the current fingerprint.
install_current() {
  [ -x "$1/bin/python" ] && [ "$(cat "$1/.actionstate-install" 2>/dev/null)" = "$(install_fingerprint)" ]
}

# mark_installed VENV: record that VENV now holds the current install.
mark_installed() {
  install_fingerprint >"$1/.actionstate-install"
}
