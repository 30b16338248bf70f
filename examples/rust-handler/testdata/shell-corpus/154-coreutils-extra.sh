# nl, cat's options, od, head/tail counts, yes, stat, du, ln, sed -i.bak.
printf 'alpha\n\nbeta\n' | nl
printf 'alpha\n\nbeta\n' | nl -ba -w3 -s': '
printf 'a\nb\n' | nl -nrz -v10 -i5 -w4
printf 'x\x01\t\r\n\n\n\nend\n' | cat -A
printf 'a\n\n\nb\n' | cat -s
printf 'a\n\nb\n' | cat -b
printf 'a\tb\n' | cat -T
printf 'line\n' | cat -E -n
od -An -tx1 <<< "A" | tr -d ' '
printf 'AB\x01\n\tzz\xff' | od
printf 'AB\x01\n\tzz\xff' | od -c
printf 'ABCDEFGHI' | od -tx2 -Ax
printf 'ABCDEFGH' | od -td4 -Ad
printf '%.0sa' {1..40} | od -c
printf '\xef\xbb\xbfbom\n' | od -An -tx1
seq 5 | head -n -2 | tail -n 1
seq 10 | head -c -5
seq 5 | tail -n +3
yes | head -n 2 || echo "yes: status $?"
(yes no | head -3 | tr '\n' ' ') || echo "status $?"
printf 'hello' > f.txt
stat -c '%s %n %F %a' f.txt
chmod +x f.txt
stat -c '%a %A' f.txt
[ -x f.txt ] && echo "f.txt is executable"
chmod 600 f.txt
stat --printf='%a\n' f.txt
mkdir -p tree/sub && printf 'hello' > tree/sub/f
stat -c '%a %F' tree
du -s tree; du -sh tree; du tree; du -a tree
ln -s sub/f tree/link
readlink tree/link
cat tree/link
[ -L tree/link ] && echo "a symlink"
ln -s sub/f tree/link 2>&1 || echo "ln: status $?"
ln -sf sub tree/link2 && cat tree/link2/f; echo
printf 'v=1\n' > conf.env
sed -i.bak 's/1/2/' conf.env
cat conf.env conf.env.bak
