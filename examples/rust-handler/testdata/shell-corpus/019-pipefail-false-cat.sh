echo before
false | cat
echo after
