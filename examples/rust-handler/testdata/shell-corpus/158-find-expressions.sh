# find: -o, ( ), !, -exec ... ; and {} +, -delete, -prune, -size, -newer,
# -mtime, -regex, -printf, -print0 (output sorted: find's own order is the
# file system's).
mkdir -p w/a/b w/c
touch w/a/x.txt w/a/b/y.txt w/z.log w/c/k.md
find w -name '*.txt' -o -name '*.log' | sort
find w -type f -exec echo {} + | tr ' ' '\n' | sort
find w -name '*.txt' -exec echo "found {}" \; | sort
find w \( -name '*.md' -o -name '*.log' \) -print | sort
find w -type f ! -name '*.txt' | sort
find w/a -depth | sort
find w -name b -prune -o -type f -print | sort
find w -maxdepth 1 -type d | sort
find w -mindepth 3 | sort
find w -type f -printf '%f %s %d\n' | sort
find w -type f -print0 | xargs -0 -n1 basename | sort
find w -regex '.*\.\(txt\|md\)' | sort
find w -regextype posix-extended -regex '.*/[xy]\.txt' | sort
mkdir -p build/tmp
touch build/tmp/x.o build/keep.txt
find build -name '*.o' -delete
find build -type d -empty -delete
find build | sort
printf '%2000s' x > big.bin
touch small.bin
find . -maxdepth 1 -name '*.bin' -size +1k
find . -maxdepth 1 -name '*.bin' -size -1k
find . -maxdepth 1 -name '*.bin' -empty
find . -maxdepth 1 -name '*.bin' -newer w/z.log -mtime -1 | sort
find . -maxdepth 1 -name '*.bin' -mtime +3 | wc -l
find w -type f -exec sh -c 'echo "checked $1"' _ {} \; | sort
find w -type f -exec false {} \; && echo "-exec ; failures only make the test false"
find w -type f -exec false {} + || echo "-exec + failed: $?"
find w -bogus 2>&1 || echo "status $?"
