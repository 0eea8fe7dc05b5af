-- wrk script: GET <prefix>/email/find/single?id=<a new search id> on every request, so that
-- no cache or coalescing can answer for the upstream.
--   wrk ... -s bench/newid.lua URL -- <prefix> <nonce>
-- prefix is "" for the stand-in and the baseline proxies, "/enrow" for enrichproxy; nonce
-- (hex, up to 8 digits) differs per run, so that ids never repeat across runs either.
-- Ids look like Enrow's: 8-4-4-4-12 hex digits.

local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  prefix = (args[1] or "") .. "/email/find/single?id="
  nonce = tonumber(args[2] or "0", 16) or 0
  counter = 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", string.format("%s%08x-%04x-4000-8000-%012x", prefix, nonce, tid, counter))
end
