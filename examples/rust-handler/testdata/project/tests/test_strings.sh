#!/usr/bin/env bash
set -eu
. lib/assert.sh
. lib/strings.sh

assert_eq "$(slugify 'Hello, World!')" "hello-world"
assert_eq "$(slugify '--Release 1.2--')" "release-1-2"
assert_eq "$(trim '   a b   ')" "a b"
echo "test_strings: ok"
