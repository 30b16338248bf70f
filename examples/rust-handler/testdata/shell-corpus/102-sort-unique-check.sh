printf 'b\na\nb\nc\n' | sort -u
printf '3\n1\n2\n' | sort -r
printf 'x 2\ny 10\nz 1\n' | sort -k2 -n
printf 'a\nb\n' | sort -c && echo sorted
