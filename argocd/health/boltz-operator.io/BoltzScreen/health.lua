-- Argo CD health check for boltz-operator.io/v1alpha1 BoltzScreen (mapping: argocd/README.md).
--
-- Phases: Pending, WaitingForModelCache, Preparing, Screening, Ranking, Succeeded, Failed. A screen waiting on a model
-- cache that failed needs a person: Degraded.
--
-- Contract: Argo CD sets the global `obj` (the live object) and reads the returned table
-- {status = Healthy | Progressing | Degraded | Suspended | Missing | Unknown, message = string}.
-- From argocd-cm it runs without the string and math libraries: this script needs neither.
local hs = {}

local function condition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator: no status yet"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. generation
    .. " (status is for generation " .. status.observedGeneration .. ")"
  return hs
end

local phase = status.phase
local message = status.message

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = message or "screen complete"
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  if message == nil then
    local failed = condition(status, "Failed")
    if failed ~= nil then
      message = failed.message
    end
  end
  hs.message = message or "screen failed"
  return hs
end

if phase == "WaitingForModelCache" then
  local cacheReady = condition(status, "ModelCacheReady")
  if cacheReady ~= nil and (cacheReady.reason == "ModelCacheFailed" or cacheReady.reason == "ModelCacheLacksBundle") then
    hs.status = "Degraded"
    hs.message = message or cacheReady.message or "the model cache is Failed"
    return hs
  end
end

-- Pending, WaitingForModelCache, Preparing, Screening, Ranking, and any phase newer than this script.
hs.status = "Progressing"
if message ~= nil then
  hs.message = phase .. ": " .. message
else
  hs.message = phase
end
return hs
