true && echo t
false || echo f
: && echo colon
: "${UNSET_BUT_FINE:=x}"
echo "$UNSET_BUT_FINE"
