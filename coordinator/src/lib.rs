//! Miroir coordinator: Raft peers over gRPC, cluster API, map watch and leader controllers (not built yet).
