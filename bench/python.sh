# Sourced by the bench scripts: sets PY to a Python with the packages named in $@ (torch, and
# transformers where the reference needs it). It makes .venv from the machine's package index on
# first use; where pip cannot, it falls back to Debian's python3-torch (torch-only benchmarks).
bench_python() {
  local imports
  imports=$(IFS=,; echo "$*")
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import $imports" 2>/dev/null; then
    echo "setting up .venv with $* (pip, local package index)..." >&2
    if python3 -m venv .venv && .venv/bin/pip install --quiet "$@"; then :; else
      if [ "$*" = torch ]; then
        echo "pip install torch failed; trying Debian's python3-torch" >&2
        apt-get install -y python3-torch libopenblas0-pthread >&2
      else
        echo "pip install $* failed" >&2
        return 1
      fi
    fi
  fi
  PY=python3
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import $imports" 2>/dev/null; then PY=.venv/bin/python; fi
}
