// Package dashboards builds the hospital ERP's Grafana dashboards with the
// Grafana Foundation SDK. The JSON files in k8s/monitoring/dashboards are its
// output (go test ./dashboards -update rewrites them; a test fails when they
// differ); kustomize turns each into a ConfigMap that Grafana's sidecar
// provisions (label grafana_dashboard: "1").
//
// Every dashboard has an environment variable (the namespace) and reads the
// data sources of k8s/monitoring/config/grafana-datasources.yml. PromQL uses
// the metric names of k8s/monitoring/config/metrics.yml and the recording
// rules of config/rules/hospital-erp.rules.yml (tools/k8scheck parses every
// expression and checks every name).
package dashboards

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/loki"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Data source uids (config/grafana-datasources.yml).
const (
	PrometheusUID = "hospital-erp-prometheus"
	LokiUID       = "hospital-erp-loki"
)

var (
	promDS = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(PrometheusUID)}
	lokiDS = common.DataSourceRef{Type: cog.ToPtr("loki"), Uid: cog.ToPtr(LokiUID)}
)

// All returns every dashboard as indented JSON, by file name.
func All() (map[string][]byte, error) {
	out := map[string][]byte{}
	for file, b := range map[string]*dashboard.DashboardBuilder{
		"application-overview.json": applicationOverview(),
		"kubernetes-cluster.json":   kubernetesCluster(),
		"database-performance.json": databasePerformance(),
		"hospital-operations.json":  hospitalOperations(),
	} {
		d, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		// Stable, unique panel ids (links and Grafana's state refer to them).
		for i, p := range d.Panels {
			switch {
			case p.Panel != nil:
				p.Panel.Id = cog.ToPtr(uint32(i + 1))
			case p.RowPanel != nil:
				p.RowPanel.Id = uint32(i + 1)
			}
		}
		j, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out[file] = append(j, '\n')
	}
	return out, nil
}

// newDashboard starts a dashboard with the environment variable.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	env := `label_values(up{job="backend"}, namespace)`
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"hospital-erp"}).
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly().
		Link(dashboard.NewDashboardLinkBuilder("Hospital ERP").Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"hospital-erp"}).AsDropdown(true).IncludeVars(true).KeepTime(true)).
		WithVariable(dashboard.NewQueryVariableBuilder("namespace").
			Label("Environment").
			Datasource(promDS).
			Query(dashboard.StringOrMap{String: cog.ToPtr(env)}).
			Definition(env).
			Refresh(dashboard.VariableRefreshOnDashboardLoad).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("hospital-erp-production")},
				Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("hospital-erp-production")}}))
}

// q is a Prometheus target.
func q(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS).Expr(expr).LegendFormat(legend)
}

// ts is a time series panel of the given width (of 24) over Prometheus.
func ts(title, description, unit string, width uint32, targets ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Description(description).Datasource(promDS).Unit(unit).
		Height(8).Span(width).FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true))
	for i, t := range targets {
		p.WithTarget(t.RefId(string(rune('A' + i))))
	}
	return p
}

// threshold draws a dashed red line at v.
func threshold(p *timeseries.PanelBuilder, v float64) *timeseries.PanelBuilder {
	return p.Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps([]dashboard.Threshold{
		{Value: nil, Color: "green"}, {Value: cog.ToPtr(v), Color: "red"},
	})).ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
}

// st is a single-value panel.
func st(title, description, unit string, width uint32, target *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(description).Datasource(promDS).Unit(unit).
		Height(4).Span(width).WithTarget(target.Instant().RefId("A")).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}

// logPanel shows log lines from Loki.
func logPanel(title, description, expr string) *logs.PanelBuilder {
	return logs.NewPanelBuilder().Title(title).Description(description).Datasource(lokiDS).Height(10).Span(24).
		ShowTime(true).WrapLogMessage(true).SortOrder(common.LogsSortOrderDescending).
		WithTarget(loki.NewDataqueryBuilder().Datasource(lokiDS).Expr(expr).RefId("A"))
}

// lokiTS is a time series panel of a LogQL metric query.
func lokiTS(title, description, expr, legend string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Description(description).Datasource(lokiDS).Unit("short").
		Height(8).Span(12).FillOpacity(10).
		WithTarget(loki.NewDataqueryBuilder().Datasource(lokiDS).Expr(expr).LegendFormat(legend).RefId("A"))
}

func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title) }

const ns = `namespace="$namespace"`

func applicationOverview() *dashboard.DashboardBuilder {
	return newDashboard("hospital-erp-application", "Hospital ERP / Application overview",
		"Traffic, errors, latency and saturation of the backend and the frontend of one environment.").
		WithRow(row("Traffic")).
		WithPanel(st("Requests per second", "Backend and frontend together.", "reqps", 6,
			q(`sum(namespace_job:http_requests:rate5m{`+ns+`})`, "requests/s"))).
		WithPanel(st("5xx ratio", "Share of requests answered 5xx (alert above 5 % for 5 minutes).", "percentunit", 6,
			q(`max(namespace_job:http_error_ratio:rate5m{`+ns+`})`, "worst"))).
		WithPanel(st("p95 latency", "95th percentile of the backend (alert above 500 ms for 5 minutes).", "s", 6,
			q(`namespace_job:http_request_duration_seconds:p95_5m{`+ns+`, job="backend"}`, "backend"))).
		WithPanel(st("Backend replicas up", "Backend pods answering Prometheus.", "short", 6,
			q(`sum(up{`+ns+`, job="backend"})`, "up"))).
		WithPanel(ts("Requests per second", "By service.", "reqps", 12,
			q(`namespace_job:http_requests:rate5m{`+ns+`}`, "{{job}}"))).
		WithPanel(ts("Backend requests by route", "Route templates, never raw paths.", "reqps", 12,
			q(`sum by (route) (rate(http_requests_total{`+ns+`, job="backend"}[$__rate_interval]))`, "{{route}}"))).
		WithRow(row("Errors")).
		WithPanel(threshold(ts("5xx ratio", "Share of requests answered 5xx, by service; the alert fires above the line for 5 minutes.", "percentunit", 8,
			q(`namespace_job:http_error_ratio:rate5m{`+ns+`}`, "{{job}}")), 0.05)).
		WithPanel(ts("5xx by route", "", "reqps", 8,
			q(`sum by (job, route) (rate(http_requests_total{`+ns+`, code=~"5.."}[$__rate_interval]))`, "{{job}} {{route}}"))).
		WithPanel(ts("Errors by application code", "Errors returned to clients: invalid, not_found, conflict, unauthorized, forbidden, unavailable, internal.", "reqps", 8,
			q(`sum by (code) (rate(app_errors_total{`+ns+`}[$__rate_interval]))`, "{{code}}"))).
		WithRow(row("Latency")).
		WithPanel(threshold(ts("Latency percentiles", "p50, p95 and p99 by service; the alert fires when p95 stays above the line.", "s", 12,
			q(`namespace_job:http_request_duration_seconds:p50_5m{`+ns+`}`, "p50 {{job}}"),
			q(`namespace_job:http_request_duration_seconds:p95_5m{`+ns+`}`, "p95 {{job}}"),
			q(`namespace_job:http_request_duration_seconds:p99_5m{`+ns+`}`, "p99 {{job}}")), 0.5)).
		WithPanel(ts("p95 by route (backend)", "", "s", 12,
			q(`histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket{`+ns+`, job="backend"}[$__rate_interval])))`, "{{route}}"))).
		WithPanel(ts("p95 by route (frontend)", "", "s", 12,
			q(`histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket{`+ns+`, job="frontend"}[$__rate_interval])))`, "{{route}}"))).
		WithPanel(ts("p99 by route (backend)", "", "s", 12,
			q(`histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{`+ns+`, job="backend"}[$__rate_interval])))`, "{{route}}"))).
		WithRow(row("Saturation")).
		WithPanel(ts("Requests in flight", "Per pod.", "short", 8,
			q(`sum by (pod) (http_requests_in_flight{`+ns+`})`, "{{pod}}"))).
		WithPanel(threshold(ts("Database pool in use", "Acquired over maximum connections of the backends' pools (alert above 90 % for 10 minutes, per pod).", "percentunit", 8,
			q(`namespace:db_pool_utilisation:ratio{`+ns+`}`, "all backends"),
			q(`max by (pod) (db_pool_acquired_connections{`+ns+`} / db_pool_max_connections{`+ns+`})`, "{{pod}}")), 0.9)).
		WithPanel(ts("Cache hit ratio", "Hits over all lookups; bypass means Redis was unavailable.", "percentunit", 8,
			q(`namespace:cache_hit_ratio:rate5m{`+ns+`}`, "hit ratio"),
			q(`sum by (result) (rate(cache_requests_total{`+ns+`, result=~"bypass|error"}[$__rate_interval])) / ignoring(result) group_left sum(rate(cache_requests_total{`+ns+`}[$__rate_interval]))`, "{{result}}"))).
		WithPanel(ts("Redis circuit breaker", "0 closed, 1 half-open, 2 open (alert when open for 2 minutes).", "short", 8,
			q(`max by (pod) (redis_circuit_breaker_state{`+ns+`})`, "{{pod}}"))).
		WithPanel(ts("Open WebSocket connections", "Live boards and screens.", "short", 8,
			q(`sum(websocket_connections{`+ns+`})`, "connections"))).
		WithPanel(ts("Rate-limited requests", "429s by scope.", "reqps", 8,
			q(`sum by (scope) (rate(ratelimit_rejections_total{`+ns+`}[$__rate_interval]))`, "{{scope}}"))).
		WithPanel(ts("Memory (resident)", "Per pod.", "bytes", 12,
			q(`sum by (pod) (process_resident_memory_bytes{`+ns+`, job=~"backend|frontend"})`, "{{pod}}"))).
		WithPanel(ts("Goroutines", "Per pod.", "short", 12,
			q(`sum by (pod) (go_goroutines{`+ns+`, job=~"backend|frontend"})`, "{{pod}}"))).
		WithRow(row("Logs")).
		WithPanel(lokiTS("Requests by status class", "From the access log (Loki).",
			`sum by (component, status_class) (count_over_time({`+ns+`, component=~"backend|frontend", status_class=~".+"}[$__interval]))`, "{{component}} {{status_class}}")).
		WithPanel(lokiTS("Warnings and errors", "Log lines at warn or error level.",
			`sum by (component, level) (count_over_time({`+ns+`, level=~"warn|error"}[$__interval]))`, "{{component}} {{level}}")).
		WithPanel(logPanel("Errors and 5xx requests", "Each line carries request_id (also shown to the user) and user_id as JSON fields.",
			`{`+ns+`, component=~"backend|frontend", level=~"warn|error"} | json`))
}

func kubernetesCluster() *dashboard.DashboardBuilder {
	cpuUse := `sum by (pod, container) (rate(container_cpu_usage_seconds_total{` + ns + `, container!=""}[$__rate_interval]))`
	memUse := `sum by (pod, container) (container_memory_working_set_bytes{` + ns + `, container!=""})`
	return newDashboard("hospital-erp-kubernetes", "Hospital ERP / Kubernetes cluster",
		"Pods, restarts, CPU and memory against requests and limits, autoscalers of one environment.").
		WithRow(row("Pods")).
		WithPanel(st("Running pods", "", "short", 6, q(`sum(kube_pod_status_phase{`+ns+`, phase="Running"})`, "running"))).
		WithPanel(st("Not ready pods", "", "short", 6, q(`sum(kube_pod_status_ready{`+ns+`, condition="false"})`, "not ready"))).
		WithPanel(st("Restarts (1 h)", "", "short", 6, q(`sum(increase(kube_pod_container_status_restarts_total{`+ns+`}[1h]))`, "restarts"))).
		WithPanel(st("Targets down", "Scrape targets not answering Prometheus.", "short", 6, q(`count(up{`+ns+`} == 0) or vector(0)`, "down"))).
		WithPanel(ts("Pods by phase", "", "short", 12, q(`sum by (phase) (kube_pod_status_phase{`+ns+`})`, "{{phase}}"))).
		WithPanel(ts("Available replicas", "Deployments' available against desired replicas; Redis ready against its replicas.", "short", 12,
			q(`kube_deployment_status_replicas_available{`+ns+`}`, "{{deployment}} available"),
			q(`kube_deployment_spec_replicas{`+ns+`}`, "{{deployment}} desired"),
			q(`kube_statefulset_status_replicas_ready{`+ns+`}`, "{{statefulset}} ready"),
			q(`kube_statefulset_replicas{`+ns+`}`, "{{statefulset}} desired"))).
		WithPanel(ts("Container restarts", "Restarts in the last hour, by container (crash loops alert after 5 minutes).", "short", 12,
			q(`sum by (pod, container) (increase(kube_pod_container_status_restarts_total{`+ns+`}[1h])) > 0`, "{{pod}} {{container}}"))).
		WithPanel(ts("Waiting containers", "Containers waiting, by reason (CrashLoopBackOff, ImagePullBackOff...).", "short", 12,
			q(`sum by (reason) (kube_pod_container_status_waiting_reason{`+ns+`})`, "{{reason}}"))).
		WithRow(row("CPU and memory")).
		WithPanel(threshold(ts("CPU against limits", "Used over limit per container (alert above 90 % for 10 minutes).", "percentunit", 12,
			q(cpuUse+` / sum by (pod, container) (kube_pod_container_resource_limits{`+ns+`, resource="cpu"})`, "{{pod}} {{container}}")), 0.9)).
		WithPanel(threshold(ts("Memory against limits", "Working set over limit per container (alert above 90 % for 10 minutes).", "percentunit", 12,
			q(memUse+` / sum by (pod, container) (kube_pod_container_resource_limits{`+ns+`, resource="memory"})`, "{{pod}} {{container}}")), 0.9)).
		WithPanel(ts("CPU against requests", "What the HPAs scale on (70 % of the request).", "percentunit", 12,
			q(cpuUse+` / sum by (pod, container) (kube_pod_container_resource_requests{`+ns+`, resource="cpu"})`, "{{pod}} {{container}}"))).
		WithPanel(ts("CPU throttling", "Share of CPU periods throttled by the limit.", "percentunit", 12,
			q(`sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{`+ns+`, container!=""}[$__rate_interval])) / sum by (pod) (rate(container_cpu_cfs_periods_total{`+ns+`, container!=""}[$__rate_interval]))`, "{{pod}}"))).
		WithPanel(ts("CPU used", "Cores per pod.", "short", 12, q(`sum by (pod) (rate(container_cpu_usage_seconds_total{`+ns+`, container!=""}[$__rate_interval]))`, "{{pod}}"))).
		WithPanel(ts("Memory used", "Working set per pod.", "bytes", 12, q(`sum by (pod) (container_memory_working_set_bytes{`+ns+`, container!=""})`, "{{pod}}"))).
		WithRow(row("Autoscaling")).
		WithPanel(ts("HPA replicas", "Current, desired and maximum replicas of each autoscaler.", "short", 24,
			q(`kube_horizontalpodautoscaler_status_current_replicas{`+ns+`}`, "{{horizontalpodautoscaler}} current"),
			q(`kube_horizontalpodautoscaler_status_desired_replicas{`+ns+`}`, "{{horizontalpodautoscaler}} desired"),
			q(`kube_horizontalpodautoscaler_spec_min_replicas{`+ns+`}`, "{{horizontalpodautoscaler}} min"),
			q(`kube_horizontalpodautoscaler_spec_max_replicas{`+ns+`}`, "{{horizontalpodautoscaler}} max"))).
		WithRow(row("Logs")).
		WithPanel(logPanel("Panics and fatal errors", "Any container of the environment.", `{`+ns+`} |~ "(?i)panic|fatal"`))
}

func databasePerformance() *dashboard.DashboardBuilder {
	pools := ns + `, database!="pgbouncer"`
	db := ns + `, datname="hospital"`
	return newDashboard("hospital-erp-database", "Hospital ERP / Database performance",
		"PgBouncer pools and waits, the backends' connection pools, PostgreSQL (postgres_exporter) and Redis of one environment.").
		WithRow(row("PgBouncer")).
		WithPanel(st("PgBouncers up", "", "short", 6, q(`sum(pgbouncer_up{`+ns+`})`, "up"))).
		WithPanel(st("Clients waiting", "Client connections queued for a server connection (alert when any wait for 5 minutes).", "short", 6,
			q(`sum(pgbouncer_pools_client_waiting_connections{`+pools+`})`, "waiting"))).
		WithPanel(st("Longest client wait", "", "s", 6, q(`max(pgbouncer_pools_client_maxwait_seconds{`+pools+`})`, "max wait"))).
		WithPanel(st("Client connections used", "Active and waiting clients over max_client_conn.", "percentunit", 6,
			q(`sum(pgbouncer_pools_client_active_connections{`+pools+`} + pgbouncer_pools_client_waiting_connections{`+pools+`}) / sum(pgbouncer_config_max_client_connections{`+ns+`})`, "used"))).
		WithPanel(ts("Client connections", "Active and waiting, per PgBouncer pod.", "short", 12,
			q(`sum by (pod) (pgbouncer_pools_client_active_connections{`+pools+`})`, "{{pod}} active"),
			q(`sum by (pod) (pgbouncer_pools_client_waiting_connections{`+pools+`})`, "{{pod}} waiting"))).
		WithPanel(ts("Server connections", "To PostgreSQL, against the pool size.", "short", 12,
			q(`sum by (pod) (pgbouncer_pools_server_active_connections{`+pools+`})`, "{{pod}} active"),
			q(`sum by (pod) (pgbouncer_pools_server_idle_connections{`+pools+`})`, "{{pod}} idle"),
			q(`max by (pod) (pgbouncer_databases_pool_size{`+ns+`, name!="pgbouncer"})`, "{{pod}} pool size"),
			q(`sum by (pod) (pgbouncer_databases_current_connections{`+ns+`, name!="pgbouncer"})`, "{{pod}} current"))).
		WithPanel(ts("Longest client wait", "Age of the oldest client waiting for a server connection.", "s", 12,
			q(`max by (pod) (pgbouncer_pools_client_maxwait_seconds{`+pools+`})`, "{{pod}}"))).
		WithPanel(ts("Backend wait for a connection", "Mean time a backend transaction waited for a pooled connection: PgBouncer's queue as the application sees it.", "s", 12,
			q(`namespace:db_pool_acquire_wait_seconds:mean5m{`+ns+`}`, "mean wait"),
			q(`sum(rate(db_pool_empty_acquires_total{`+ns+`}[$__rate_interval])) / sum(rate(db_pool_acquires_total{`+ns+`}[$__rate_interval]))`, "share of acquisitions that waited"))).
		WithRow(row("Backend pools")).
		WithPanel(threshold(ts("Pool in use", "Acquired over maximum connections per backend pod.", "percentunit", 8,
			q(`max by (pod) (db_pool_acquired_connections{`+ns+`} / db_pool_max_connections{`+ns+`})`, "{{pod}}")), 0.9)).
		WithPanel(ts("Pool connections", "Open, idle and in use, all backends.", "short", 8,
			q(`sum(db_pool_total_connections{`+ns+`})`, "open"),
			q(`sum(db_pool_idle_connections{`+ns+`})`, "idle"),
			q(`sum(db_pool_acquired_connections{`+ns+`})`, "in use"))).
		WithPanel(ts("Retries and cancellations", "Transactions retried after serialization failures or deadlocks; acquisitions given up.", "ops", 8,
			q(`sum(rate(db_transaction_retries_total{`+ns+`}[$__rate_interval]))`, "retries"),
			q(`sum(rate(db_pool_canceled_acquires_total{`+ns+`}[$__rate_interval]))`, "cancelled acquisitions"))).
		WithRow(row("PostgreSQL (postgres_exporter)")).
		WithPanel(st("PostgreSQL up", "", "short", 6, q(`min(pg_up{`+ns+`})`, "up"))).
		WithPanel(st("Connections used", "Backends over max_connections.", "percentunit", 6,
			q(`sum(pg_stat_database_numbackends{`+ns+`}) / max(pg_settings_max_connections{`+ns+`})`, "used"))).
		WithPanel(st("Cache hit", "Blocks found in shared buffers.", "percentunit", 6,
			q(`sum(rate(pg_stat_database_blks_hit{`+db+`}[$__rate_interval])) / (sum(rate(pg_stat_database_blks_hit{`+db+`}[$__rate_interval])) + sum(rate(pg_stat_database_blks_read{`+db+`}[$__rate_interval])))`, "hit"))).
		WithPanel(st("Replication lag", "Of the replicas the exporter watches.", "s", 6, q(`max(pg_replication_lag_seconds{`+ns+`})`, "lag"))).
		WithPanel(ts("Connections", "By state.", "short", 12, q(`sum by (state) (pg_stat_activity_count{`+ns+`})`, "{{state}}"))).
		WithPanel(ts("Transactions", "Commits and rollbacks per second.", "ops", 12,
			q(`sum(rate(pg_stat_database_xact_commit{`+db+`}[$__rate_interval]))`, "commits"),
			q(`sum(rate(pg_stat_database_xact_rollback{`+db+`}[$__rate_interval]))`, "rollbacks"))).
		WithPanel(ts("Cache hit ratio", "", "percentunit", 12,
			q(`sum(rate(pg_stat_database_blks_hit{`+db+`}[$__rate_interval])) / (sum(rate(pg_stat_database_blks_hit{`+db+`}[$__rate_interval])) + sum(rate(pg_stat_database_blks_read{`+db+`}[$__rate_interval])))`, "hit ratio"))).
		WithPanel(ts("Replication lag and deadlocks", "", "s", 12,
			q(`max(pg_replication_lag_seconds{`+ns+`})`, "replication lag"),
			q(`sum(increase(pg_stat_database_deadlocks{`+db+`}[1h]))`, "deadlocks in the last hour"))).
		WithRow(row("Redis")).
		WithPanel(ts("Redis up", "Per server (Sentinel fails over when the master goes).", "short", 8,
			q(`max by (pod) (redis_up{`+ns+`})`, "{{pod}}"),
			q(`max by (pod) (redis_master_link_up{`+ns+`})`, "{{pod}} link to master"))).
		WithPanel(ts("Redis memory", "Used against maxmemory.", "bytes", 8,
			q(`max by (pod) (redis_memory_used_bytes{`+ns+`})`, "{{pod}} used"),
			q(`max by (pod) (redis_memory_max_bytes{`+ns+`})`, "{{pod}} max"))).
		WithPanel(ts("Redis clients, replicas and hits", "", "short", 8,
			q(`sum by (pod) (redis_connected_clients{`+ns+`})`, "{{pod}} clients"),
			q(`max by (pod) (redis_connected_slaves{`+ns+`})`, "{{pod}} replicas"),
			q(`sum(rate(redis_keyspace_hits_total{`+ns+`}[$__rate_interval])) / (sum(rate(redis_keyspace_hits_total{`+ns+`}[$__rate_interval])) + sum(rate(redis_keyspace_misses_total{`+ns+`}[$__rate_interval])))`, "keyspace hit ratio"),
			q(`sum(rate(redis_commands_processed_total{`+ns+`}[$__rate_interval]))`, "commands/s"),
			q(`count by (role) (redis_instance_info{`+ns+`})`, "{{role}}"))).
		WithRow(row("Logs")).
		WithPanel(logPanel("PgBouncer and Redis logs", "", `{`+ns+`, component=~"pgbouncer|redis"}`))
}

func hospitalOperations() *dashboard.DashboardBuilder {
	inService := `sum(max by (ward) (ward_beds{` + ns + `, status!="out_of_service"}))`
	return newDashboard("hospital-erp-operations", "Hospital ERP / Hospital operations",
		"Census, bed occupancy by ward, admissions, discharges, queues and appointments of one environment. Ward, queue and appointment numbers are read from the database every 15 s.").
		WithRow(row("Now")).
		WithPanel(st("Inpatients (census)", "Occupied beds across all wards.", "short", 4, q(`namespace:inpatients:count{`+ns+`}`, "inpatients"))).
		WithPanel(st("Occupancy", "Occupied over beds in service.", "percentunit", 4,
			q(`sum(max by (ward) (ward_beds{`+ns+`, status="occupied"})) / `+inService, "occupancy"))).
		WithPanel(st("Admissions (24 h)", "", "short", 4, q(`sum(increase(admissions_total{`+ns+`}[24h]))`, "admissions"))).
		WithPanel(st("Patients waiting", "In every department's queue.", "short", 4,
			q(`sum(namespace_department:queue_waiting_patients:max{`+ns+`})`, "waiting"))).
		WithPanel(st("Break-glass grants (24 h)", "Emergency access to patients outside the user's care; each is reviewed.", "short", 4,
			q(`sum(increase(emergency_access_grants_total{`+ns+`}[24h]))`, "grants"))).
		WithPanel(st("Audit chain", "1: the recent chain verified intact by every replica; 0: broken (alert).", "short", 4,
			q(`min(audit_chain_verified{`+ns+`})`, "verified"))).
		WithRow(row("Beds")).
		WithPanel(bargauge.NewPanelBuilder().Title("Occupancy by ward").Description("Occupied over beds in service (a full ward alerts after 30 minutes).").
			Datasource(promDS).Unit("percentunit").Min(0).Max(1).Height(8).Span(12).
			Orientation(common.VizOrientationHorizontal).DisplayMode(common.BarGaugeDisplayModeGradient).
			WithTarget(q(`namespace_ward:ward_occupancy:ratio{`+ns+`}`, "{{ward}}").Instant().RefId("A"))).
		WithPanel(ts("Beds by state", "All wards.", "short", 12,
			q(`sum by (status) (max by (ward, status) (ward_beds{`+ns+`}))`, "{{status}}"))).
		WithPanel(ts("Occupancy by ward", "", "percentunit", 24, q(`namespace_ward:ward_occupancy:ratio{`+ns+`}`, "{{ward}}"))).
		WithRow(row("Admissions")).
		WithPanel(ts("Admissions per hour", "", "short", 12,
			q(`namespace:admissions:increase1h{`+ns+`}`, "all"),
			q(`sum by (source) (increase(admissions_total{`+ns+`}[1h]))`, "{{source}}"))).
		WithPanel(ts("Discharges and transfers per hour", "", "short", 12,
			q(`sum by (disposition) (increase(discharges_total{`+ns+`}[1h]))`, "discharged: {{disposition}}"),
			q(`sum(increase(transfers_total{`+ns+`}[1h]))`, "transfers"),
			q(`sum(increase(admission_cancellations_total{`+ns+`}[1h]))`, "cancelled"))).
		WithRow(row("Queues and appointments")).
		WithPanel(ts("Patients waiting", "Per department.", "short", 8,
			q(`namespace_department:queue_waiting_patients:max{`+ns+`}`, "{{department}}"))).
		WithPanel(ts("Longest current wait", "How long the first patient of each queue has waited.", "s", 8,
			q(`max by (department) (queue_longest_wait_seconds{`+ns+`})`, "{{department}}"))).
		WithPanel(ts("Wait until called", "Median and 90th percentile over the last hour, per department.", "s", 8,
			q(`histogram_quantile(0.5, sum by (department, le) (rate(queue_wait_seconds_bucket{`+ns+`}[1h])))`, "p50 {{department}}"),
			q(`namespace_department:queue_wait_seconds:p90_1h{`+ns+`}`, "p90 {{department}}"))).
		WithPanel(bargauge.NewPanelBuilder().Title("Appointments today").Description("By status, hospital time zone.").
			Datasource(promDS).Unit("short").Height(8).Span(12).
			Orientation(common.VizOrientationHorizontal).DisplayMode(common.BarGaugeDisplayModeBasic).
			WithTarget(q(`max by (status) (appointments_today{`+ns+`})`, "{{status}}").Instant().RefId("A"))).
		WithPanel(ts("Sign-ins", "By result.", "ops", 12,
			q(`sum by (result) (rate(auth_logins_total{`+ns+`}[$__rate_interval]))`, "{{result}}"))).
		WithRow(row("Logs")).
		WithPanel(logPanel("Admission, transfer and discharge requests", "Access-log lines of the inpatient commands (ids and status, no patient data).",
			`{`+ns+`, component="backend"} | json | route=~"POST /api/v1/admissions.*"`))
}
