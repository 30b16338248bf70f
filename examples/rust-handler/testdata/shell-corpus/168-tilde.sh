# `~` expands at the start of a word even when the word ends right after
# it, and after the `=` of an assignment (or a word that looks like one);
# quoted or followed by a name, it stays.
case ~ in /*) echo "absolute home" ;; esac
x=~/cache; case $x in /*/cache | /cache) echo "assignment expands" ;; esac
echo a=~ | grep -c "~" || true
echo "~" '~' ~user-that-does-not-exist | grep -c "~"
v=$(echo ~); [ -n "$v" ] && echo "substitution expands"
