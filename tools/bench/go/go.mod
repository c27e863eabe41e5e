module kslab/tools/bench/go

go 1.19
