# Zeek: log the provenance meshsight puts on each copy (headers set by the sidecar from the
# connection, never by the client) next to Zeek's http.log entry. Load with
# `zeek -i <iface> meshsight-copies.zeek`. Not run here: no zeek binary on the test machine
# (untested; `zeek -a meshsight-copies.zeek` parses it).
@load base/protocols/http

module MeshsightCopies;

export {
	redef record HTTP::Info += {
		ms_source: string &log &optional;
		ms_principal: string &log &optional;
		ms_request_id: string &log &optional;
		ms_reason: string &log &optional;
		ms_signatures: string &log &optional;
	};
}

event http_header(c: connection, is_orig: bool, original_name: string, name: string, value: string)
	{
	if ( ! is_orig || ! c?$http )
		return;
	switch ( name ) {
	case "X-MESHSIGHT-MIRROR-SOURCE-ADDRESS":
		c$http$ms_source = value;
		break;
	case "X-MESHSIGHT-MIRROR-SOURCE-PRINCIPAL":
		c$http$ms_principal = value;
		break;
	case "X-MESHSIGHT-MIRROR-REQUEST-ID":
		c$http$ms_request_id = value;
		break;
	case "X-MESHSIGHT-MIRROR-REASON":
		c$http$ms_reason = value;
		break;
	case "X-MESHSIGHT-MIRROR-SIGNATURES":
		c$http$ms_signatures = value;
		break;
	}
	}
