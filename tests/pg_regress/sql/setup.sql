-- Install skycat (and q3c, the peer used as an independent reference).
CREATE EXTENSION skycat;
CREATE EXTENSION q3c;
-- A helper that shows the SQLSTATE and message of a failing statement on one line.
CREATE FUNCTION error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- The installed surface: every function with its arguments, result, volatility (i = immutable,
-- v = volatile), parallel safety (s = safe, u = unsafe) and strictness.
SELECT p.proname AS function, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS returns,
       p.provolatile AS vol, p.proparallel AS par, p.proisstrict AS strict
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'skycat'
 ORDER BY p.proname, 2;
