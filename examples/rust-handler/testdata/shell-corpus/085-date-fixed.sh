date -u -d @0 +%Y-%m-%d
date -u -d @1700000000 '+%Y%m%d-%H%M%S'
date -u -d @86400 +%F
