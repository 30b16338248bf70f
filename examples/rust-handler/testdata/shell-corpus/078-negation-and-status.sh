! false && echo "negated false is true"
true; echo "status $?"
false || echo "status $?"
if ! [ -f missing ]; then echo "missing is missing"; fi
