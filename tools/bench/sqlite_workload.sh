#!/bin/bash
# SPDX-License-Identifier: MIT
#
# sqlite_workload.sh: print the SQL script of the sqlite test on stdout.
#
# usage: sqlite_workload.sh <rows>
#
# The same <rows> always give the same script, byte for byte: every size
# and value comes from one linear congruential generator in awk, seeded
# with 1.  A quarter of the rows are users (a name, an email, a text of 0
# to about 1.5 KiB, one in eight with a blob of up to 8 KiB, others a few
# bytes of hex), three quarters orders (an item, a note of 0 to 300
# bytes), inserted 1000 to a transaction.  Then two indexes, joins,
# aggregates, sorts, a window function, a table built from a join,
# updates that grow and shrink texts, deletes, and the same queries again.
# Every query orders its output completely, so that the output is the same
# under every allocator.

set -u -o pipefail

if [ $# -ne 1 ] || ! [ "$1" -gt 0 ] 2> /dev/null; then
	echo "usage: $0 <rows>" >&2
	exit 2
fi

awk -v rows="$1" '
function rnd(n) {
	# exact in a double: 69069 * 2^32 is below 2^53
	seed = (seed * 69069 + 1) % 4294967296;
	return int(seed / 65536) % n;
}
# a text of about len bytes cut from the word list, starting at a random word
function text(len,    s, i) {
	if (len <= 0)
		return "";
	i = rnd(nwords) + 1;
	s = "";
	while (length(s) < len) {
		s = s words[i] " ";
		i = i % nwords + 1;
	}
	return substr(s, 1, len);
}
function hex(n,    s, i) {
	s = "";
	for (i = 0; i < n; i++)
		s = s sprintf("%02x", rnd(256));
	return "X'\''" s "'\''";
}
function queries(tag) {
	print "SELECT '\''" tag "'\'', count(*), sum(length(bio)), sum(length(avatar)), sum(score) FROM users;";
	print "SELECT '\''" tag "'\'', count(*), sum(qty * price), sum(length(note)) FROM orders;";
	print "SELECT u.id, u.name, count(o.id), sum(o.qty * o.price) FROM users u " \
	      "JOIN orders o ON o.user_id = u.id GROUP BY u.id ORDER BY 4 DESC, 1 LIMIT 15;";
	print "SELECT item, count(*), sum(qty), min(price), max(price) FROM orders " \
	      "GROUP BY item ORDER BY 2 DESC, 1 LIMIT 15;";
	print "SELECT id, substr(bio, 1, 24), length(bio) FROM users " \
	      "ORDER BY bio, id LIMIT 10 OFFSET 100;";
	print "SELECT user_id, length(group_concat(note, '\''|'\'')) FROM " \
	      "(SELECT user_id, note FROM orders ORDER BY id) GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 10;";
	print "SELECT id, score, rank() OVER (ORDER BY score DESC, id) FROM users " \
	      "ORDER BY 3 LIMIT 10;";
	print "SELECT score % 10, count(*), sum(length(email)) FROM users " \
	      "WHERE score BETWEEN 1000 AND 60000 GROUP BY 1 ORDER BY 1;";
}
BEGIN {
	seed = 1;
	nwords = split("alpha bravo charlie delta echo foxtrot golf hotel india " \
		       "juliett kilo lima mike november oscar papa quebec romeo " \
		       "sierra tango uniform victor whiskey xray yankee zulu slab " \
		       "cache magazine depot extent page object grace period", words, " ");
	nusers = int(rows / 4);
	if (nusers < 1)
		nusers = 1;
	norders = rows - nusers;
	print ".headers off";
	print ".mode list";
	print "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT, bio TEXT, avatar BLOB, score INTEGER);";
	print "CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER, item TEXT, qty INTEGER, price INTEGER, note TEXT);";
	for (i = 1; i <= nusers; i++) {
		if (i % 1000 == 1)
			print "BEGIN;";
		len = rnd(16) == 0 ? 200 + rnd(1300) : rnd(200);
		blob = rnd(8) == 0 ? "zeroblob(" (1 + rnd(8192)) ")" : hex(rnd(24));
		printf "INSERT INTO users VALUES(%d, '\''%s%d'\'', '\''user%d@%s.example'\'', '\''%s'\'', %s, %d);\n",
		       i, words[rnd(nwords) + 1], i, i, words[rnd(nwords) + 1],
		       text(len), blob, rnd(100000);
		if (i % 1000 == 0 || i == nusers)
			print "COMMIT;";
	}
	for (i = 1; i <= norders; i++) {
		if (i % 1000 == 1)
			print "BEGIN;";
		printf "INSERT INTO orders VALUES(%d, %d, '\''%s-%d'\'', %d, %d, '\''%s'\'');\n",
		       i, 1 + rnd(nusers), words[rnd(nwords) + 1], rnd(50), 1 + rnd(10),
		       1 + rnd(10000), text(rnd(4) == 0 ? rnd(300) : rnd(40));
		if (i % 1000 == 0 || i == norders)
			print "COMMIT;";
	}
	print "CREATE INDEX orders_user ON orders(user_id);";
	print "CREATE INDEX users_score ON users(score);";
	queries("loaded");
	print "CREATE TABLE joined AS SELECT o.id, o.note, u.bio FROM orders o JOIN users u ON u.id = o.user_id WHERE o.qty > 3;";
	print "SELECT count(*), sum(length(note)), sum(length(bio)) FROM joined;";
	print "DROP TABLE joined;";
	print "BEGIN;";
	print "UPDATE users SET bio = bio || '\'' '\'' || bio WHERE score % 7 = 0;";
	print "UPDATE users SET bio = substr(bio, 1, 10), avatar = NULL WHERE score % 5 = 0;";
	print "UPDATE orders SET note = upper(note) || '\''!'\'' WHERE qty > 6;";
	print "DELETE FROM orders WHERE price % 5 = 0;";
	print "DELETE FROM users WHERE id % 11 = 0;";
	print "DELETE FROM orders WHERE user_id NOT IN (SELECT id FROM users);";
	print "COMMIT;";
	queries("changed");
}'
