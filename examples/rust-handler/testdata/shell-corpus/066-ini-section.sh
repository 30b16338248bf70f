section=database
sed -n "/^\[$section\]/,/^\[/p" config/settings.ini | grep '=' | sed 's/ *= */=/'
