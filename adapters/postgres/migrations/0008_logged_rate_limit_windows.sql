-- 0008: the limiter's windows survive a crash (issue 13): a logged table, still committed
-- without waiting for the disk, so a crash loses at most the last fraction of a second of
-- counts instead of every current window (docs/adr/0031-exact-rate-limiting.md).

ALTER TABLE rate_limit_windows SET LOGGED;
