value=$(grep '^NOPE=' config/app.env | cut -d= -f2 || true)
echo "value=[${value:-unset}]"
port=$(grep '^APP_PORT=' config/app.env | cut -d= -f2)
echo "port=$port"
