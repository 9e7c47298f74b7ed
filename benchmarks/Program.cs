Console.WriteLine("SimClr.Native benchmarks: suites are being assembled; see README.md.");
