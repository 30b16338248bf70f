# Variable attributes last: declare -i evaluates every assignment (and
# += adds), -l and -u keep changing case, readonly refuses unset; a
# function's local attributes end with it. PIPESTATUS holds the statuses
# of the last pipeline's commands.
declare -i n=5+3
echo "$n"
n=2*4; echo "$n"
n+=1; echo "$n"
declare -i z; z=; echo "[$z]"
declare -l low=ABC; low=DeF; echo "$low"
declare -u up=abc; up+=def; echo "$up"
f() { local -i k=2+2; k=k*3; echo "$k"; }
f; k=1+1; echo "$k"
readonly R=1
unset R || echo "unset refused: $?"
echo "R=$R"
declare -r C=5; echo "C=$C"
echo "start: ${PIPESTATUS[@]}"
set +e
false | true | (exit 3); echo "statuses: ${PIPESTATUS[*]} count ${#PIPESTATUS[@]}"
true; echo "after true: ${PIPESTATUS[0]}"
set -e
echo done
