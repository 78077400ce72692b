#!/usr/bin/env bash
# How far the LEDGER's prompt estimate is from the real token count
# (docs/governance.md, "The estimate and its error"): chat requests made
# of several kinds of text (estimate/requests.py) counted with OpenAI's
# o200k_base encoding (estimate/count.mjs, js-tiktoken from the npm
# registry, installed into a temporary directory).
#
#   apt-get install -y vim-runtime nodejs npm   # the text and the counter
#   scripts/bench/estimate_error.sh             # under a minute
#
# It writes only to its temporary directory, removed at exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/pw-estimate.XXXXXX)
trap 'rm -rf "$dir"' EXIT
[ -f /usr/share/vim/vim90/lang/ja/LC_MESSAGES/vim.mo ] ||
  { echo "$(basename "$0"): needs vim-runtime (the message catalogues)" >&2; exit 1; }
python3 "$here/estimate/requests.py" "$dir/requests.json"
(cd "$dir" && npm install --silent --no-audit --no-fund js-tiktoken@1 > /dev/null)
cp "$here/estimate/count.mjs" "$dir/"
(cd "$dir" && node count.mjs requests.json)
