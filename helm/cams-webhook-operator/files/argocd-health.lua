-- Argo CD health check for camswebhook.io/PhoneWebhook. Install it in argocd-cm under the key
-- resource.customizations.health.camswebhook.io_PhoneWebhook (see docs/gitops.md).
-- It reads what kstatus reads: observedGeneration first, then Stalled, Reconciling and Ready.
local health = {}
local generation = obj.metadata.generation or 0
if obj.metadata.deletionTimestamp ~= nil then
  health.status = "Progressing"
  health.message = "Being deleted"
  return health
end
if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration ~= generation then
  health.status = "Progressing"
  health.message = "Waiting for the operator to process generation " .. tostring(generation)
  return health
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end
local ready, stalled, reconciling = conditions["Ready"], conditions["Stalled"], conditions["Reconciling"]
if stalled ~= nil and stalled.status == "True" then
  health.status = "Degraded"
  health.message = stalled.reason .. ": " .. (stalled.message or "")
  return health
end
-- Paused with CAMS holding the spec: Suspended. Paused before it was ever applied: Progressing (below).
if ready ~= nil and ready.reason == "Paused" and ready.status == "True" then
  health.status = "Suspended"
  health.message = ready.message or "Paused"
  return health
end
if reconciling ~= nil and reconciling.status == "True" then
  health.status = "Progressing"
  health.message = reconciling.reason .. ": " .. (reconciling.message or "")
  return health
end
if ready ~= nil and ready.status == "True" then
  health.status = "Healthy"
  health.message = ready.message or "Ready"
  return health
end
health.status = "Progressing"
health.message = "Waiting for Ready"
return health
