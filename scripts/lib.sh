# Shared by scripts/setup.sh and scripts/citus-setup.sh (sourced): messages, root, apt packages.
# SAY_PREFIX names the calling script in its messages.

say() { printf '\033[1m[%s]\033[0m %s\n' "${SAY_PREFIX:-setup}" "$*"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_ensure WHAT PACKAGE...: installs the packages that are not installed yet.
apt_ensure() {
  local what=$1 p
  shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing $what: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    say "$what present"
  fi
}
