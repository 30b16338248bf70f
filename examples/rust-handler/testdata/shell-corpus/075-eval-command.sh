cmd="echo evaluated"
eval "$cmd"
var_name=GREETING
eval "$var_name=hi"
echo "$GREETING"
