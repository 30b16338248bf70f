# Scripts write to /tmp without making it (the sandbox's is made on first
# use, in the build dir).
echo "cache key" > /tmp/wasmrunner-corpus-166.txt
cat /tmp/wasmrunner-corpus-166.txt
cd /tmp && pwd && cd - >/dev/null
rm /tmp/wasmrunner-corpus-166.txt
test -e /tmp/wasmrunner-corpus-166.txt || echo removed
