# cxx-std.sh, sourced by build-torch.sh and check-shim-compile.sh:
# cxx_std MAJOR MINOR prints the C++ standard libtorch MAJOR.MINOR's headers
# were made with. From 2.14 on (PyTorch 2.14's release notes,
# pytorch#178150) ATen's headers stop with "C++20 or later compatible
# compiler is required"; older ones are C++17 (the shim compiles as either).
cxx_std() {
	if (($1 > 2 || ($1 == 2 && $2 >= 14))); then echo c++20; else echo c++17; fi
}
