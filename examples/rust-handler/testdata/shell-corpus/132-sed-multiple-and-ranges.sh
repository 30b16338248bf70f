sed -e 's/apple/APPLE/' -e 's/banana/BANANA/g' data/words.txt | head -4
sed -n '2,4{s/^/> /;p}' data/words.txt
sed '/^#/d;/^$/d;s/=.*//' config/app.env
sed -E 's/^([^=]+)=(.*)$/\2 <- \1/' config/app.env | grep -v '^#' | grep -v '^ <-' | head -3
sed 'y/abc/xyz/' <<< "aabbcc"
