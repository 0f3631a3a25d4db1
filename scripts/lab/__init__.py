"""Doorstep lab: an isolated home network for the e2e tests and the demo.

It builds network namespaces joined by veth pairs (a private "home LAN" where mDNS is
allowed), runs Home Assistant and reference doorbells inside them, and drives Home
Assistant over its REST and websocket APIs. Nothing here touches the machine's real
interfaces: every address lives on veths that this code creates and removes.
"""
