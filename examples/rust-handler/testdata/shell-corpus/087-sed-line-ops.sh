sed -n '2p' data/words.txt
sed -n '$p' data/words.txt
sed '2,4d' data/words.txt
sed -n '/^b/p' data/words.txt
sed '1i header' VERSION
sed '$a footer' VERSION
sed -n '/apple/=' data/words.txt
