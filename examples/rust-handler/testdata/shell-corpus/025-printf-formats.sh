printf '%s\n' one two three
printf '%5d|%-5d|%05d\n' 42 42 42
printf '%x %X %o\n' 255 255 8
printf '%-10s|%10s|\n' left right
printf '%.2f %s\n' 3.14159 pi
printf 'no newline'
printf '\n%s=%s\n' key value
printf '%%d literal\n'
