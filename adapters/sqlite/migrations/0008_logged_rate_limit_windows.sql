-- 0008: nothing to do on SQLite (its limiter windows were never unlogged); kept so both
-- databases number their migrations alike.

SELECT 1;
