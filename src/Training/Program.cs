Console.WriteLine("SimClr.Native: the trainer is being assembled; see README.md.");
