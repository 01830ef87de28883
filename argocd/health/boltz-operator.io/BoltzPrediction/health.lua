-- Argo CD health check for boltz-operator.io/v1alpha1 BoltzPrediction (mapping: argocd/README.md).
--
-- Contract: Argo CD sets the global `obj` (the live object) and reads the returned table
-- {status = Healthy | Progressing | Degraded | Suspended | Missing | Unknown, message = string}.
-- From argocd-cm it runs without the string and math libraries (Argo CD opens only base, table, package and
-- a safe os unless resource.customizations.useOpenLibs.<group_kind> is "true"): this script needs none of them.
--
-- A prediction is a run, not a service: Healthy means the run Succeeded, Degraded that it Failed (or cannot
-- start until a human fixes its model cache), Progressing everything on the way. A Queued prediction (a Job
-- held by Kueue until quota frees) is Progressing, not Suspended: it starts by itself, nobody paused it.
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

-- A spec change the operator has not seen yet: the phase may be out of date.
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
  hs.message = message or "prediction complete"
  if status.results ~= nil and status.results.uri ~= nil then
    hs.message = hs.message .. "; results: " .. status.results.uri
  end
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
  hs.message = message or "prediction failed"
  return hs
end

if phase == "WaitingForModelCache" then
  local cacheReady = condition(status, "ModelCacheReady")
  if cacheReady ~= nil and cacheReady.reason == "ModelCacheFailed" then
    -- Not terminal (it starts once the cache is fixed and Ready), but nothing moves until someone acts.
    hs.status = "Degraded"
    hs.message = message or cacheReady.message or "the model cache is Failed"
    return hs
  end
end

-- Pending, WaitingForModelCache, Queued, Running, and any phase newer than this script.
hs.status = "Progressing"
if message ~= nil then
  hs.message = phase .. ": " .. message
else
  hs.message = phase
end
return hs
