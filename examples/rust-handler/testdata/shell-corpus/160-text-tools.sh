# paste, tac, fold, comm, join, split, install, uname; grep context;
# sort -h; wc -L; sed \U \L; printf %e; set -a; date -d DATE.
printf '1\n2\n3\n' > a; printf 'x\ny\nz\n' > b
paste a b; paste -d, a b; paste -s -d+ a; seq 1 2 7 | paste -sd' '
seq 3 | tac; printf 'a\nb' | tac; echo
echo "hello world foo" | fold -w 5; echo abcdefghij | fold -w3; echo "aaa bbb ccc" | fold -s -w 8
printf 'a\nb\nc\n' > x; printf 'b\nc\nd\n' > y
comm x y; comm -12 x y; comm -23 x y
printf '1 a\n2 b\n3 c\n' > j1; printf '1 x\n3 y\n' > j2; join j1 j2
printf 'k:v1\n' > t1; printf 'k:v2\n' > t2; join -t: t1 t2
seq 10 > n; split -l 4 n part_; ls part_*; cat part_ab
split -b 5 -d n chunk_; ls chunk_*
mkdir -p dst; echo x > f; install -m 755 f dst/f2; install -d dst/sub; ls dst; stat -c %a dst/f2
uname -s; uname | grep -q Linux && echo linux
printf '1\n2\n3\nX\n5\n6\n7\n8\nX\n' | grep -A1 -B1 X
printf '1\nX\n3\n' | grep -n -C1 X
printf '2K\n1M\n3G\n512\n' | sort -h; printf '1.5G 2\n900M 1\n' | sort -h -r
wc -L <<< "abc defgh"; printf 'a\tb\nlonger line\n' | wc -L
echo "hello world" | sed 's/\(hello\) \(world\)/\U\1\E \u\2/'; echo "MiXed" | sed 's/.*/\L&/'
printf '%e %E %.2e\n' 1234.5 0.00012 -5
printf 'a=1\nb=2\n' > .env; set -a; . ./.env; set +a; sh -c 'echo "exported: $a$b"'
date -d "2024-01-15" +%Y%m%d; date -u -d "2024-02-29T13:14:15Z" +%s; date -d "2024-01-15 10:30" +"%F %T"
date -d "2024-01-31 1 day" +%F; date -d "2024-03-01 2 days ago" +%F; date -u -d @0 +"%Y-%m-%dT%H:%M:%SZ"
printf 'NAME STATUS AGE\napi ok 3d\n\nworker failed\n' | column -t | cat -A
printf 'a,b\ncc,d\n' | column -t -s, -o ' | '
printf 'a\nb\nc\nd\nb\nx\nc\ny\n' | awk '/b/,/c/'
printf '1\n2\n3\n4\n' | awk 'NR==2, NR==3 {print "r" $0}'
