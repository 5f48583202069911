# Sourced by the bench scripts: sets PY to a Python with the packages named in $@ (torch, and
# transformers where the reference needs it). It makes .venv from the machine's package index on
# first use; where pip cannot, it falls back to Debian's python3-torch (torch-only benchmarks).
# Where the machine has local package indexes (/opt/pypi/simple, /opt/pypi-more/simple), pip uses
# those alone, so it does not wait on retries against an unreachable default index.
bench_pip_index() {
  local args=() first=1 dir
  for dir in /opt/pypi/simple /opt/pypi-more/simple; do
    [ -d "$dir" ] || continue
    if [ $first = 1 ]; then args+=(--index-url "file://$dir"); first=0; else args+=(--extra-index-url "file://$dir"); fi
  done
  echo "${args[@]}"
}

bench_python() {
  local imports index
  imports=$(IFS=,; echo "$*")
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import $imports" 2>/dev/null; then
    echo "setting up .venv with $* (pip, local package index)..." >&2
    index=$(bench_pip_index)
    # shellcheck disable=SC2086 # $index is a list of pip arguments (paths without spaces)
    if { [ -x .venv/bin/python ] || python3 -m venv .venv; } && .venv/bin/pip install --quiet $index "$@"; then :; else
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
