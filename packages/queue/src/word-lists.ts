// Lua helpers for the small per-block hashes whose fields hold space-separated word lists (job
// ids, worker keys). A list stays tiny (a binary node has two children; a worker is barred from
// few jobs), so a read-modify-write inside one script is cheap, and being one script it is
// atomic across relay processes.

/** Lua: `addWord(key, field, word)` appends `word` unless present; returns 1 when it did. */
export const luaAddWord = `
local function addWord(key, field, word)
  local list = redis.call('HGET', key, field) or ''
  if string.find(' ' .. list .. ' ', ' ' .. word .. ' ', 1, true) then return 0 end
  if list == '' then list = word else list = list .. ' ' .. word end
  redis.call('HSET', key, field, list)
  return 1
end`;

/** Lua: `removeWord(key, field, word)` drops `word` from the list (and the field when empty). */
export const luaRemoveWord = `
local function removeWord(key, field, word)
  local list = redis.call('HGET', key, field)
  if not list then return 0 end
  local kept = {}
  for w in string.gmatch(list, '%S+') do
    if w ~= word then kept[#kept + 1] = w end
  end
  if #kept == 0 then redis.call('HDEL', key, field) else redis.call('HSET', key, field, table.concat(kept, ' ')) end
  return 1
end`;

/** Splits a stored word list (null when the field is absent). */
export const words = (list: string | null | undefined): string[] =>
  list ? list.split(" ").filter(Boolean) : [];
