#!/usr/bin/env bash
set -eu
. lib/assert.sh

assert_eq "$(bash bin/greet)" "Hello, world!" "default name"
assert_eq "$(bash bin/greet ci --upper)" "Hello, CI!" "--upper"
assert_eq "$(bash bin/greet '  padded  ')" "Hello, padded!" "trimmed"
status=0
bash bin/greet x --bogus 2>/dev/null || status=$?
assert_eq "$status" 2 "unknown option"
echo "test_greet: ok"
