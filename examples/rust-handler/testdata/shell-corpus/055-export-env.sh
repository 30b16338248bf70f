export APP_MODE=test
export APP_NAME="demo app"
env | grep '^APP_' | sort
unset APP_MODE
env | grep -c '^APP_MODE=' || echo "APP_MODE unset"
