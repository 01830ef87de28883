-- Argo CD health check for boltz-operator.io/v1alpha1 BoltzModelCache (mapping: argocd/README.md).
--
-- Contract: Argo CD sets the global `obj` (the live object) and reads the returned table
-- {status = Healthy | Progressing | Degraded | Suspended | Missing | Unknown, message = string}.
-- From argocd-cm it runs without the string and math libraries: this script needs neither.
--
-- Ready (the weights are on the volume and verified) is Healthy, Failed is Degraded, anything else
-- (Pending, Populating, a spec change not yet observed) is Progressing.
local hs = {}

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator: no status yet"
  return hs
end

-- A new generation runs a new populate Job: until the operator has seen it, Ready may be out of date.
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. generation
    .. " (status is for generation " .. status.observedGeneration .. ")"
  return hs
end

local phase = status.phase
local message = status.message

if phase == "Ready" then
  hs.status = "Healthy"
  hs.message = message or "model cache Ready"
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message or "model cache Failed"
  return hs
end

hs.status = "Progressing"
if message ~= nil then
  hs.message = phase .. ": " .. message
else
  hs.message = phase
end
return hs
