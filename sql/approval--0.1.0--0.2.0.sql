-- approval 0.1.0 -> 0.2.0: hardening (issue "Hardening").
--
-- Run by ALTER EXTENSION approval UPDATE.  Every change here is also in
-- sql/approval.sql, so that an upgraded database and a fresh install of
-- 0.2.0 have the same objects (test/t/ checks it with pg_dump -s).

\echo Use "ALTER EXTENSION approval UPDATE TO '0.2.0'" to load this file. \quit
