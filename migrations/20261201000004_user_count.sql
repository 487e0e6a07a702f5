-- The tenant's number of users as the last check that could count them read it
-- (Graph `GET /v1.0/users/$count`, with User.Read.All), and when: pages show it without
-- calling Graph while rendering. A check that cannot count keeps the last count and its time.
alter table tenant add column user_count integer;
alter table tenant add column user_count_at text;
