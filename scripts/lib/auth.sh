# shellcheck shell=bash
# scripts/lib/auth.sh — auth mode for the conformance runs (CONFORMANCE_AUTH=1).
#
#   source scripts/lib/auth.sh
#   conformance_auth_setup BIN DIR   # BIN: the octoserve binary, DIR: a scratch directory
#
# writes DIR/htpasswd (one bcrypt user, made with `BIN htpasswd`) and
# DIR/auth.yaml (a config fragment turning auth on, with a rule granting
# that user pull, push and delete everywhere and no anonymous access), and
# exports:
#   OCI_USERNAME, OCI_PASSWORD   read by both conformance suites
#   CONFORMANCE_AUTH_CONFIG      DIR/auth.yaml; start octoserve with
#                                --config "$CONFORMANCE_AUTH_CONFIG"
# When the run has its own config file, conformance_auth_config FILE
# appends the auth section to it instead (FILE must have no auth: key).

conformance_auth_setup() {
  local bin=$1 dir=$2
  mkdir -p "$dir"
  export OCI_USERNAME=${OCI_USERNAME:-conformance}
  export OCI_PASSWORD=${OCI_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}
  printf '%s\n' "$OCI_PASSWORD" | "$bin" htpasswd "$OCI_USERNAME" >"$dir/htpasswd"
  export CONFORMANCE_AUTH_CONFIG=$dir/auth.yaml
  : >"$CONFORMANCE_AUTH_CONFIG"
  conformance_auth_config "$CONFORMANCE_AUTH_CONFIG" "$dir/htpasswd"
}

# conformance_auth_config FILE [HTPASSWD]: append the auth section to FILE.
conformance_auth_config() {
  local file=$1 htpasswd=${2:-$(dirname "$CONFORMANCE_AUTH_CONFIG")/htpasswd}
  cat >>"$file" <<YAML
auth:
  htpasswd: $htpasswd
  rules:
    - repository: "**"
      users: [$OCI_USERNAME]
      actions: [pull, push, delete]
YAML
}
