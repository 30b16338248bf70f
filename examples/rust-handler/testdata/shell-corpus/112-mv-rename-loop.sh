mkdir -p ren
for n in one two three; do echo $n > "ren/$n.txt"; done
for f in ren/*.txt; do mv "$f" "${f%.txt}.md"; done
ls ren
