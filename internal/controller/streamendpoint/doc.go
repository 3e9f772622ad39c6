// Package streamendpoint reconciles StreamEndpoints: the WebSocket handlers
// that Piopiy streams a call's audio to.
//
// In managed mode (spec.image) the controller owns a Deployment running the
// user's bot beside callfleet's stream gateway, a Service, the gateway's
// ServiceAccount, Role and RoleBinding, and an Ingress when spec.ingress asks
// for one. In external mode (spec.external) it runs nothing and the endpoint
// is Ready while the handler's health URL answers 2xx.
//
// Either way status carries the URL Piopiy dials, the capacity in concurrent
// streams, the number of Calls streaming now and kstatus conditions (Ready,
// Reconciling, Stalled). The controller never writes to spec, so GitOps tools
// see no drift.
package streamendpoint
