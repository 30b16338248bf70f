cp config/app.env app.env
sed -i 's/^LOG_LEVEL=.*/LOG_LEVEL=debug/' app.env
sed -i '/^#/d; /^$/d' app.env
cat app.env
