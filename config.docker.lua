-- SL configuration of the Docker image (copied to /opt/sl/config.lua; see
-- Dockerfile, docker-compose.yaml and docs/docker.md). Every setting left
-- out has its default (README.md, "Configuration").

-- API tokens from the environment (docker-compose.yaml passes them through).
-- Without SL_ADMIN_TOKEN the API is open to whoever reaches port 8080: fine
-- for trying SL on your own machine, never for a shared network.
local admin, invoke = os.getenv("SL_ADMIN_TOKEN"), os.getenv("SL_INVOKE_TOKEN")
if admin and admin ~= "" then
  Auth { admin = admin, invoke = (invoke and invoke ~= "") and { invoke } or nil }
end

Server {
  host = "0.0.0.0",     -- every interface of the container; publish the port with -p 8080:8080
  port = 8080,
  insecure = not (admin and admin ~= ""),   -- listening beyond loopback without tokens needs this
}

-- Routes (README.md, "Building apps") on their own port, published by
-- docker-compose.yaml: they run only the actions an admin has routed.
Routes { host = "0.0.0.0", port = 8081 }

Logger { level = "info" }  -- SL_LOG overrides

-- Actions and invocations live in MongoDB, shared by every slserver that
-- uses the same database. "mongo" is the compose service's host name.
Mongodb { url = "mongodb://mongo", port = 27017, database = "sl" }

-- The shipped plugins, built into the image.
Plugin "skeleton" { file = "/opt/sl/plugins/libsl_skeleton.so" }
Plugin "http"     { file = "/opt/sl/plugins/libsl_http.so", timeout = 5000 }
-- Actions' own data, in another database of the same MongoDB.
Plugin "mongo"    { file = "/opt/sl/plugins/libsl_mongo.so", url = "mongodb://mongo", port = 27017, database = "slplugin" }
