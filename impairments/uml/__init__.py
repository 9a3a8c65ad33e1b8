"""The User-mode Linux router: real netem for hosts whose kernel lacks sch_netem."""
