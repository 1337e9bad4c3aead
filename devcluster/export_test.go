package devcluster

// ProcessAlive exports processAlive to the external tests.
var ProcessAlive = processAlive
