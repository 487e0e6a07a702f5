-- Background jobs that instances sharing this database take turns at (purging stale rows):
-- one row a job, held by one instance until `until`. An instance takes a job whose lease
-- has run out, or renews its own, with one conditional upsert; an instance that dies
-- simply stops renewing, and another takes the job over once `until` has passed. A lease
-- row rather than a database lock: it works the same on SQLite and through a PostgreSQL
-- connection pooler, and says who holds what.
create table job_lease (
    name   text primary key,
    holder text not null,
    until  text not null
);
